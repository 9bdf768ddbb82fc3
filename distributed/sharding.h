// sharding.h: placeholder, being written.
