// runtime.cpp: placeholder, being written.
