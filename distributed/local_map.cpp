// local_map.cpp: placeholder, being written.
