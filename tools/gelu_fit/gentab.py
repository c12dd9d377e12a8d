import numpy as np, math, sys
from scipy.optimize import linprog
from fit5 import M
from edges import edges
def minimax_fixed(w, f, fixed, deg):
    # coefficients 0..len(fixed)-1 fixed; fit the rest minimizing max rel error
    A=np.vander(w,deg+1,increasing=True)
    k=len(fixed)
    base=A[:,:k]@np.array(fixed) if k else np.zeros_like(w)
    B=A[:,k:]/f[:,None]; tgt=1-base/f
    n=B.shape[1]; one=np.ones(len(w))
    c0,*_=np.linalg.lstsq(B,tgt,rcond=None)
    for K in (1e-6,1e-8,1e-10):
        r0=B@c0-tgt
        Aub=np.block([[B,-one[:,None]],[-B,-one[:,None]]]); bub=np.concatenate([-r0/K, r0/K])
        cost=np.zeros(n+1); cost[-1]=1
        r=linprog(cost,A_ub=Aub,b_ub=bub,bounds=[(None,None)]*n+[(0,None)],method='highs')
        c0=c0+K*r.x[:n]
    return list(fixed)+list(c0)
deg=int(sys.argv[1]) if len(sys.argv)>1 else 6
rows=[]; worst=0
for lo,hi in edges():
    u=np.linspace(max(lo-1e-4,0),hi+1e-4,600); f=M(u); w=u-lo
    fixed=[]
    for k in range(deg+1):
        c=minimax_fixed(w,f,fixed,deg)
        fixed.append(float(np.float32(c[k])))
    v=np.polyval(np.array(fixed)[::-1],w); e=np.abs(v/f-1).max(); worst=max(worst,e)
    rows.append(fixed)
rows=np.array(rows,dtype=np.float32)
print("// deg=%d, float32 coefficients: worst rel err %.3g"%(deg,worst))
print("constexpr float kNormTailM[%d][16] = {"%(deg+1))
for k in range(deg+1):
    print("    {"+", ".join("%.9ef"%v for v in rows[:,k])+"},")
print("};")
