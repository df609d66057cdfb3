"""What MONAI lacks for synthetic-CT bundles: losses, networks, trainers, metrics, data tools and the ``custom`` CLI
(``python -m custom --help``)."""

import logging
import warnings

# With pydicom installed (the optional dose engine brings it), every MONAI LoadImage tries to register a GPU-only
# nvImageCodec DICOM decoder and warns twice that it cannot; DICOM series are read by ITK here, so say nothing.
logging.getLogger("monai.data.nvimgcodec_pydicom_plugin").setLevel(logging.ERROR)
warnings.filterwarnings("ignore", message="NvImgCodecPydicomReader: nvImageCodec decoder plugin did not register")
