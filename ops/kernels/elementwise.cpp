// elementwise.cpp: placeholder, being written.
