"""Tiny random diffusers pipelines saved as their authors ship them (``save_pretrained``): the reference a
GenProp folder load must reproduce.

``WanImageToVideoPipeline`` (UMT5 + its tokenizer, CLIP + its image processor, the Wan VAE, the transformer, a
UniPC or flow-match Euler scheduler) and ``StableVideoDiffusionPipeline`` (CLIP + its feature extractor, the
temporal VAE, the spatio-temporal U-Net, the EDM Euler scheduler), built from diffusers' and transformers' classes
under a fixed seed. The tokenizer is trained offline with ``tokenizers`` on a few sentences.
"""

from __future__ import annotations

import numpy as np
import torch

WAN_SCHEDULERS = ("unipc", "euler")
PROMPT = "a red ball rolls  across the &amp; floor "  # whitespace and an HTML entity: the pipeline cleans both


def _tokenizer():
    """A small UMT5-style (sentencepiece Unigram) fast tokenizer: pad 0, eos 1, unk 2."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import T5TokenizerFast

    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    corpus = ["a red ball rolls across the floor", "a cat sits on a mat", "remove the blue square & the shadow",
              "the dog runs in the park", "a car drives down the road at night"] * 20
    tok.train_from_iterator(corpus, trainers.UnigramTrainer(vocab_size=60, special_tokens=["<pad>", "</s>", "<unk>"],
                                                           unk_token="<unk>"))
    from tokenizers.processors import TemplateProcessing

    tok.post_processor = TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return T5TokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                           extra_ids=0)


def wan_scheduler(name: str):
    """The scheduler of the real 480P folder (UniPC, flow prediction, shift 3) or flow-match Euler (shift 3)."""
    from diffusers import FlowMatchEulerDiscreteScheduler, UniPCMultistepScheduler

    if name == "unipc":
        return UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0,
                                       num_train_timesteps=1000)
    return FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0)


def save_wan_pipeline(directory: str, scheduler: str = "unipc") -> str:
    """A tiny ``WanImageToVideoPipeline`` written with ``save_pretrained``; returns ``directory``."""
    from diffusers import AutoencoderKLWan, WanImageToVideoPipeline, WanTransformer3DModel
    from transformers import (CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection, UMT5Config,
                              UMT5EncoderModel)

    torch.manual_seed(0)
    vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True])
    text = UMT5EncoderModel(UMT5Config(vocab_size=64, d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2,
                                       relative_attention_num_buckets=8))
    image = CLIPVisionModelWithProjection(CLIPVisionConfig(hidden_size=8, projection_dim=8, num_hidden_layers=2,
                                                           num_attention_heads=2, image_size=32, intermediate_size=16,
                                                           patch_size=8))
    processor = CLIPImageProcessor(crop_size=32, size=32)
    transformer = WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12,
                                        in_channels=36, out_channels=16, text_dim=16, freq_dim=256, ffn_dim=32,
                                        num_layers=3, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
                                        rope_max_seq_len=32, image_dim=8, added_kv_proj_dim=24)
    pipe = WanImageToVideoPipeline(tokenizer=_tokenizer(), text_encoder=text, vae=vae, scheduler=wan_scheduler(scheduler),
                                   image_encoder=image, image_processor=processor, transformer=transformer)
    pipe.save_pretrained(directory)
    return directory


def save_svd_pipeline(directory: str) -> str:
    """A tiny ``StableVideoDiffusionPipeline`` written with ``save_pretrained``; returns ``directory``."""
    from diffusers import (AutoencoderKLTemporalDecoder, EulerDiscreteScheduler, StableVideoDiffusionPipeline,
                           UNetSpatioTemporalConditionModel)
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(0)
    unet = UNetSpatioTemporalConditionModel(
        block_out_channels=(32, 64), down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
        up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"), cross_attention_dim=32,
        num_attention_heads=(2, 4), in_channels=8, out_channels=4, layers_per_block=1, sample_size=8,
        addition_time_embed_dim=8, projection_class_embeddings_input_dim=24, num_frames=16)
    vae = AutoencoderKLTemporalDecoder(block_out_channels=[32, 64], in_channels=3, out_channels=3,
                                       down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
                                       latent_channels=4, layers_per_block=1)
    image = CLIPVisionModelWithProjection(CLIPVisionConfig(hidden_size=16, projection_dim=32, num_hidden_layers=1,
                                                           num_attention_heads=2, image_size=224,
                                                           intermediate_size=32, patch_size=56))
    scheduler = EulerDiscreteScheduler(
        num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
        prediction_type="v_prediction", interpolation_type="linear", use_karras_sigmas=True, sigma_min=0.002,
        sigma_max=700.0, timestep_spacing="leading", timestep_type="continuous", steps_offset=1,
        final_sigmas_type="zero")
    pipe = StableVideoDiffusionPipeline(vae=vae, image_encoder=image, unet=unet, scheduler=scheduler,
                                        feature_extractor=CLIPImageProcessor(crop_size=224, size=224))
    pipe.save_pretrained(directory)
    return directory


def first_frame(height: int, width: int, seed: int = 0) -> np.ndarray:
    """(H, W, 3) uint8: a smooth random image (what a user's edited first frame could be)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (4, 4, 3)).astype(np.float32)
    import cv2

    return np.clip(cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC), 0, 255).astype(np.uint8)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR (dB) of two videos in [0, 1]."""
    mse = float(((a.double() - b.double()) ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)

