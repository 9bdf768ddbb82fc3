// local_map.h: placeholder, being written.
