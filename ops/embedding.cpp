// embedding.cpp: placeholder, being written.
