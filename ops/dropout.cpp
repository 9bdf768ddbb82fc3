// dropout.cpp: placeholder, being written.
