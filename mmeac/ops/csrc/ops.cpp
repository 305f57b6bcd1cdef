// Schemas of mmeac's compiled kernels and the Python module they load with.
//
// The kernels live in the `mmeac_C` namespace of PyTorch's dispatcher. They
// are building blocks of the Python-level ops in mmeac.ops (which own
// autograd, fake kernels and input checks) and are not meant to be called
// directly.
#include <Python.h>
#include <torch/library.h>

extern "C" {
// `import mmeac._C` loads this library, which runs the registrations below.
PyMODINIT_FUNC PyInit__C(void) {
  static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_C", nullptr,
                                      -1, nullptr};
  return PyModule_Create(&module);
}
}

TORCH_LIBRARY(mmeac_C, m) {
  // Core-periphery attention forward: (out, lse), both token-major.
  m.def("cp_attention_fwd(Tensor q, Tensor k, Tensor v, int num_cores, "
        "float scale) -> (Tensor, Tensor)");
  // SwiGLU gate in place: h = [u | w] (the bias-free fc1 output, with bias
  // [b_u | b_w]) becomes [silu(u + b_u) * (w + b_w) | w].
  m.def("swiglu_(Tensor(a!) h, Tensor bias) -> ()");
}
