// redistribute.cpp: placeholder, being written.
