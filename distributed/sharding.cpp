// sharding.cpp: placeholder, being written.
