# Fused types shared by the alignment kernels (no module of its own).

ctypedef fused real:
    float
    double

ctypedef fused clock:
    float
    double
