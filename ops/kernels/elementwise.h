// elementwise.h: placeholder, being written.
