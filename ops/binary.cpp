// binary.cpp: placeholder, being written.
