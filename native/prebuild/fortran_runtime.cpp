// Compiled only into the self-contained prebuild (NSA_FLOW_STATIC_BLAS=1, scripts/blas-flags.cjs).
//
// Debian's static OpenBLAS needs one function of the GNU Fortran run time: LAPACK's SIDE // TRANS
// string concatenation (dormqr, dormbr, dgesvd, …, for ILAENV). libgfortran.a cannot be linked into a
// shared object (its thread-local variables use the local-exec TLS model), so the function is given
// here, with libgfortran's semantics: copy s1 then s2 into dest, truncated to destlen, blank-padded.
// Hidden, so it never interposes on the libgfortran another library in the process may load.
#include <cstddef>
#include <cstring>

extern "C" __attribute__((visibility("hidden"))) void _gfortran_concat_string(std::size_t destlen, char* dest, std::size_t len1,
                                                                                const char* s1, std::size_t len2, const char* s2) {
  if (len1 >= destlen) {
    std::memcpy(dest, s1, destlen);
    return;
  }
  std::memcpy(dest, s1, len1);
  dest += len1;
  destlen -= len1;
  if (len2 >= destlen) {
    std::memcpy(dest, s2, destlen);
    return;
  }
  std::memcpy(dest, s2, len2);
  std::memset(dest + len2, ' ', destlen - len2);
}
