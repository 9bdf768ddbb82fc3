// comm_debug.h: placeholder, being written.
