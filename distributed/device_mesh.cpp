// device_mesh.cpp: placeholder, being written.
