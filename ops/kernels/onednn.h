// onednn.h: placeholder, being written.
