// shape_ops.cpp: placeholder, being written.
