// losses.cpp: placeholder, being written.
