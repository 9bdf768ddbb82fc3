// normalization.cpp: placeholder, being written.
