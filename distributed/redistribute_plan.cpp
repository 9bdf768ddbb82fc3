// redistribute_plan.cpp: placeholder, being written.
