// tensor_methods.cpp: placeholder, being written.
