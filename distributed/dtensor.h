// dtensor.h: placeholder, being written.
