"""First-stage retrieval: BM25 over a Lucene index (:mod:`.lucene`) and RepLLaMA over FAISS (:mod:`.faiss`)."""
