import numpy as np, math, sys
from fit5 import M
from scipy.optimize import linprog
def minimax_rel(u, f, c, deg):
    w=u-c
    A=np.vander(w,deg+1,increasing=True)
    B=A/f[:,None]; one=np.ones(len(u)); n=deg+1
    c0,*_=np.linalg.lstsq(B,one,rcond=None)
    for K in (1e-6,1e-8,1e-10):
        r0=B@c0-1
        Aub=np.block([[B,-one[:,None]],[-B,-one[:,None]]]); bub=np.concatenate([-r0/K, r0/K])
        cost=np.zeros(n+1); cost[-1]=1
        r=linprog(cost,A_ub=Aub,b_ub=bub,bounds=[(None,None)]*n+[(0,None)],method='highs')
        c0=c0+K*r.x[:n]
    return c0, np.abs(B@c0-1).max()
if __name__=="__main__":
    width=float(sys.argv[1]); deg=int(sys.argv[2]); HI=float(sys.argv[3])
    nint=int(math.ceil(HI/width))
    worst=0
    for k in range(nint):
        lo=k*width; hi=lo+width; c=lo+width/2
        u=np.linspace(lo,hi,400); f=M(u)
        cc,e=minimax_rel(u,f,c,deg)
        worst=max(worst,e)
    print(width,deg,nint,"worst %.3g"%worst)
def table(edges, deg):
    out=[]
    for lo,hi in zip(edges[:-1],edges[1:]):
        c=float(np.float32((lo+hi)/2))
        u=np.linspace(lo,hi,400); f=M(u)
        cc,e=minimax_rel(u,f,c,deg)
        out.append((lo,hi,c,cc,e))
    return out
