// attention.cpp: placeholder, being written.
