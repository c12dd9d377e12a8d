import numpy as np, math, sys
from math import erfc, exp, sqrt
from scipy.optimize import linprog
from numpy.polynomial import chebyshev as C, polynomial as P
def M(u): return np.array([0.5*erfc(v/sqrt(2))*exp(v*v/2) for v in u])
def lp_minimax(B, target_one=True):
    # minimize max |B c - 1|
    n=B.shape[1]; one=np.ones(B.shape[0])
    c0,*_=np.linalg.lstsq(B,one,rcond=None)
    for K in (1e-6,1e-8):
        r0=B@c0-1
        Aub=np.block([[B,-one[:,None]],[-B,-one[:,None]]]); bub=np.concatenate([-r0/K, r0/K])
        cost=np.zeros(n+1); cost[-1]=1
        r=linprog(cost,A_ub=Aub,b_ub=bub,bounds=[(None,None)]*n+[(0,None)],method='highs')
        assert r.status==0, r.message
        c0=c0+K*r.x[:n]
    return c0, np.abs(B@c0-1).max()
def fit(p, deg, HI=13.5, sfac=True, N=3000):
    u=np.linspace(0,HI,N)
    s=1/(1+p*u); m=M(u)
    smin=1/(1+p*HI)
    z=2*(s-smin)/(1-smin)-1
    A=C.chebvander(z,deg)
    if sfac: A=A*s[:,None]
    cc,e=lp_minimax(A/m[:,None])
    a=2/(1-smin); b=-2*smin/(1-smin)-1
    pz=C.cheb2poly(cc); mono=np.zeros(1); pw=np.array([1.0])
    for ck in pz:
        mono=P.polyadd(mono,ck*pw); pw=P.polymul(pw,[b,a])
    return mono, e
if __name__=="__main__":
  HI=float(sys.argv[3]) if len(sys.argv)>3 else 13.5
  for p in [float(a) for a in sys.argv[1].split(',')]:
    for deg in [int(a) for a in sys.argv[2].split(',')]:
      c,e=fit(p,deg,HI)
      print(p,deg,"%.3g"%e, "ulps~%.3f"%(e/2**-24), np.round(c,4))
