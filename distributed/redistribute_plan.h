// redistribute_plan.h: placeholder, being written.
