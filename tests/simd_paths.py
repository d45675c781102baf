"""The C core's vector paths this CPU runs, for the tests that loop over them."""
import icalign as ica

ALL = ("avx512", "avx2", "scalar")  # widest first


def supported(paths=ALL):
    """The paths of ``paths`` (in their order) that ``set_simd_path`` accepts here;
    the current path is restored."""
    before = ica.simd_path()
    out = []
    try:
        for path in paths:
            try:
                ica.set_simd_path(path)
                out.append(path)
            except ValueError:
                pass
    finally:
        ica.set_simd_path(before)
    return out
