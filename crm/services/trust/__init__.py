"""Trust: what keeps erased people erased and private data private, below the services that
import and record (the block list here; privacy's erasure and export build on it)."""
