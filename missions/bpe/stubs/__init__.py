"""Your byte-level BPE tokenizer (GPT-2 style). Write the files in this order (brief.md):

    pretokenize.py  pretokenize, split_special                     (sections 2 and 5)
    trainer.py      pretoken_counts, merge_word, train_bpe          (sections 3 and 7)
    tokenizer.py    encode_pretoken, encode, decode, save, load     (sections 4, 5 and 6)
"""
