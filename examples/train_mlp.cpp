// train_mlp: placeholder, being written.
#include <cstdio>
int main() { std::puts("train_mlp: not written yet"); return 0; }
