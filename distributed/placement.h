// placement.h: placeholder, being written.
