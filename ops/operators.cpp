// operators.cpp: placeholder, being written.
