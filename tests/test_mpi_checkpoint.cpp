// test_mpi_checkpoint: DTensor checkpoints under MPI (being written).
