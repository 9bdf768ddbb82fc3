// comm_debug.cpp: placeholder, being written.
