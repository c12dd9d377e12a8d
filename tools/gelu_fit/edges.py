import numpy as np, math, sys
from fitpw import minimax_rel, M
B=1.0; MB=2  # u+1, quarter binades
UMAX=14.5
def edges():
    e=[]
    for k in range(16):
        ex=k//4; fr=k%4
        lo=2.0**ex*(1+fr/4)-B; hi=2.0**ex*(1+(fr+1)/4)-B
        e.append((lo,min(hi,UMAX)))
    return e
