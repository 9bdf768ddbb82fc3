// placement.cpp: placeholder, being written.
