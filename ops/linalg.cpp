// linalg.cpp: placeholder, being written.
