// collectives.h: placeholder, being written.
