"""Your LoRA and QLoRA. brief.md is the guide; work through the files in this order:

    lora_linear.py   LoRALinear: the adapter around a frozen nn.Linear      (checkpoint lora_linear)
    conv1d.py        LoRAConv1D: the same for GPT-2's transposed Conv1D       (checkpoint conv1d)
    inject.py        inject_lora: wrap target modules of a HF model by name   (checkpoint inject)
    merge.py         merge / unmerge, merge_all / unmerge_all                 (checkpoint merge)
    adapter.py       save_adapter / load_adapter: only what training changed  (checkpoint merge)
    nf4.py           nf4_code, quantize_nf4, dequantize_nf4                   (checkpoint nf4)
    qlora.py         LinearNF4: a frozen NF4 base for QLoRA                   (checkpoint qlora)
    finetune.py      build_classifier, train_classifier, accuracy             (checkpoint finetune)
    double_quant.py  the NF4 scales quantised again                           (bonus double_quant)
    causal.py        LoRA on the tiny GPT-2, a new domain                     (bonus causal)
    train.py         main(): what `llm-lab train lora` runs (complete)

Import siblings relatively (from .lora_linear import LoRALinear). peft and bitsandbytes are off
limits in this package: the checks compare against them.
"""
