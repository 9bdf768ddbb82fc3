// inplace.cpp: placeholder, being written.
