"""The released data that ships inside lmlab, one folder per dataset, compressed, each with its
licence and a PROVENANCE.md (source repository, pinned commit, SHA-256 of each file, how it was
normalized). Read it through `lmlab.data.resolve`, never by path: the resolver unpacks a folder
once into the cache and checks every file. `scripts/build_packaged_data.py` builds these folders.
"""
