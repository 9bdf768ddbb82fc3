// softmax.cpp: placeholder, being written.
