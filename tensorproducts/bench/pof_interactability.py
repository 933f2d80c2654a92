"""Interactability of the research vector Gaunt product, for ``tensorproducts.bench.pof
--interactability`` (run in the research environment, the PriceofFreedom checkout on
``PYTHONPATH``; see that script)."""

from __future__ import annotations

import json


def interactability_worker(jmaxes) -> None:
    """Interactability of the research vector Gaunt product (its own VSH inputs): rank of the
    Jacobian of the output w.r.t. one weight per input-1, input-2 and output irrep (copy), the
    measure of :func:`tensorproducts.expressivity.interactability`, in float64. Prints JSON."""
    import e3nn_jax as e3nn
    import jax
    import numpy as np
    from freedom.tensor_products import functional as F  # the research code, from --pof
    from freedom.tensor_products.vector_spherical_harmonics import VSHCoeffs

    F.VSHCoeffs = VSHCoeffs  # see pof_bench._worker
    with jax.enable_x64(True):
        for jmax in jmaxes:
            ir = VSHCoeffs.get_vsh_irreps(jmax=jmax, parity=-1)
            res = 2 * (2 * jmax + 2) + 2  # ample grid for output degree 2 jmax + 2

            def tp(a, b, res=res):
                return F.vector_gaunt_tensor_product_s2grid(
                    a, b, res_beta=res, res_alpha=2 * res, quadrature="gausslegendre",
                    p_val1=-1, p_val2=-1)  # fmt: skip

            k = jax.random.split(jax.random.PRNGKey(0), 3)
            a = e3nn.normal(ir, k[0], (4,), dtype=np.float64)
            b = e3nn.normal(ir, k[1], (4,), dtype=np.float64)
            out = tp(a, b).irreps
            e1 = np.repeat(np.arange(ir.num_irreps), [i.dim for m, i in ir for _ in range(m)])
            e3 = np.repeat(np.arange(out.num_irreps), [i.dim for m, i in out for _ in range(m)])
            n1 = ir.num_irreps

            def f(w, ir=ir, a=a, b=b, e1=e1, e3=e3, n1=n1, tp=tp):
                x = e3nn.IrrepsArray(ir, a.array * w[:n1][e1])
                y = e3nn.IrrepsArray(ir, b.array * w[n1 : 2 * n1][e1])
                return (tp(x, y).array * w[2 * n1 :][e3]).reshape(-1)

            w0 = 0.5 + np.abs(np.asarray(jax.random.normal(k[2], (2 * n1 + out.num_irreps,))))
            sv = np.linalg.svd(np.asarray(jax.jacfwd(f)(w0)), compute_uv=False)
            rank = int((sv > 1e-7 * sv[0]).sum())
            print(json.dumps({"jmax": jmax, "irreps_in": str(ir), "irreps_out": str(out),
                              "weights": int(w0.size), "rank": rank}), flush=True)  # fmt: skip
