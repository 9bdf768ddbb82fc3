// redistribute.h: placeholder, being written.
