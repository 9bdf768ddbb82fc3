// reduce.h: placeholder, being written.
