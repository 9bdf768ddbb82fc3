// device_mesh.h: placeholder, being written.
