// onednn.cpp: placeholder, being written.
