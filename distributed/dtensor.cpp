// dtensor.cpp: placeholder, being written.
