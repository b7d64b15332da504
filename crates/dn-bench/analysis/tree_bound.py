#!/usr/bin/env python3
"""How close to flooding can a propagation tree get? (issue #14, docs/benchmarks.md section 1)

Offline, on a graph built the way `dn_proto::sim` builds its topology (1,000 nodes, a random
spanning tree, then random edges up to degree 6, one-way latency uniform in 10-100 ms), for 300
random (sender, receiver) pairs, the median latency of:

- flood: the shortest path (what flooding achieves);
- tree: the shortest-path tree rooted at the best of 30 sampled centres (lowest eccentricity),
  the kind of single tree PlumTree converges to when senders change every message;
- hop1 / hop2: the sender (and, for hop2, its neighbours too) sends to all its neighbours,
  then everything follows the tree: a few entry points around the sender;
- tree + 100 shortcuts: the tree plus the 100 graph edges that shorten it most (ratio of tree
  distance to edge latency), about 0.1-0.2 extra copies per node per message.

Per-author trees computed from the graph (what source trees do, docs/architecture.md), for the
same pairs (fresh draws of 300 pairs):

- spt rtt/20ms: each author's shortest-path tree with link RTTs rounded up to 20 ms steps;
- spt hops+lat: fewest hops first, latency as the tie-break;
- spt hops/id: fewest hops, ties by node number (what a graph without RTTs would give).

Run: python3 crates/dn-bench/analysis/tree_bound.py  (seed 1; about 20 s)
"""
import random, heapq, statistics
random.seed(1)
N=1000; D=6
adj={i:{} for i in range(N)}
def add(a,b):
    if a==b or b in adj[a]: return False
    w=random.uniform(10,100); adj[a][b]=w; adj[b][a]=w; return True
order=list(range(N)); random.shuffle(order)
for i in range(1,N): add(order[i], order[random.randrange(i)])
tries=0
while sum(len(v) for v in adj.values())/N < D and tries<100000:
    a=random.randrange(N); b=random.randrange(N)
    if len(adj[a])<D and len(adj[b])<D: add(a,b)
    tries+=1
def dij(src, g):
    d={src:0}; pq=[(0,src)]; par={src:None}
    while pq:
        du,u=heapq.heappop(pq)
        if du>d[u]: continue
        for v,w in g[u].items():
            if du+w<d.get(v,1e18): d[v]=du+w; par[v]=u; heapq.heappush(pq,(d[v],v))
    return d,par
# best centre SPT as the tree
best=None
for c in random.sample(range(N),30):
    d,_=dij(c,adj); m=max(d.values())
    if best is None or m<best[0]: best=(m,c)
_,par=dij(best[1],adj)
tree={i:{} for i in range(N)}
for v,p in par.items():
    if p is not None: tree[v][p]=adj[v][p]; tree[p][v]=adj[v][p]
pairs=[(random.randrange(N),random.randrange(N)) for _ in range(300)]
srcs=set(o for o,_ in pairs)
res={'flood':[], 'tree':[], 'hop1':[], 'hop2':[]}
tcache={}; fcache={}
def td(x):
    if x not in tcache: tcache[x]=dij(x,tree)[0]
    return tcache[x]
for o,t in pairs:
    if o==t: continue
    if o not in fcache: fcache[o]=dij(o,adj)[0]
    res['flood'].append(fcache[o][t])
    res['tree'].append(td(o)[t])
    # hop1: origin sends to all neighbours eagerly; each continues on the tree
    h1=min([td(o)[t]]+[adj[o][x]+td(x)[t] for x in adj[o]])
    res['hop1'].append(h1)
    # hop2: origin's neighbours also flood to all theirs
    c=[td(o)[t]]
    for x in adj[o]:
        c.append(adj[o][x]+td(x)[t])
        for y in adj[x]:
            c.append(adj[o][x]+adj[x][y]+td(y)[t])
    res['hop2'].append(min(c))
f=statistics.median(res['flood'])
for k,v in res.items(): print(k, round(statistics.median(v)), round(statistics.median(v)/f,2))
print('avg degree', sum(len(v) for v in adj.values())/N)
# tree + K shortcut edges (from the graph), chosen by tree-distance / weight ratio
K=100
cand=[]
for u in range(N):
    du=td(u)
    for v,w in adj[u].items():
        if u<v and v not in tree[u]:
            cand.append((du[v]/w,u,v,w))
cand.sort(reverse=True)
g2={i:dict(tree[i]) for i in range(N)}
for _,u,v,w in cand[:K]:
    g2[u][v]=w; g2[v][u]=w
r=[]
for o,t in pairs:
    if o==t: continue
    r.append(dij(o,g2)[0][t])
print('tree+%d shortcuts'%K, round(statistics.median(r)), round(statistics.median(r)/f,2))

# Per-author trees from the graph: the author's own shortest-path tree, under three weightings.
from collections import deque
def lat_along(par, t):
    s = 0
    while par[t] is not None:
        s += adj[t][par[t]]; t = par[t]
    return s
def bfs_tree(src):
    par = {src: None}; q = deque([src])
    while q:
        u = q.popleft()
        for v in sorted(adj[u]):
            if v not in par: par[v] = u; q.append(v)
    return par
pairs2 = [(random.randrange(N), random.randrange(N)) for _ in range(300)]
g_hops_lat = {u: {v: 1e6 + w for v, w in adj[u].items()} for u in adj}
g_rtt20 = {u: {v: (int(w * 2 / 20) + 1) * 20 for v, w in adj[u].items()} for u in adj}
res2 = {'flood': [], 'spt rtt/20ms': [], 'spt hops+lat': [], 'spt hops/id': []}
for o, t in pairs2:
    if o == t: continue
    res2['flood'].append(dij(o, adj)[0][t])
    res2['spt rtt/20ms'].append(lat_along(dij(o, g_rtt20)[1], t))
    res2['spt hops+lat'].append(lat_along(dij(o, g_hops_lat)[1], t))
    res2['spt hops/id'].append(lat_along(bfs_tree(o), t))
f2 = statistics.median(res2['flood'])
for k, v in res2.items():
    print(k, round(statistics.median(v)), round(statistics.median(v) / f2, 2))
