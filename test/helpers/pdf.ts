import { getDocument, OPS } from "pdfjs-dist/legacy/build/pdf.mjs";

export interface PdfTextItem {
  str: string;
  x: number;
  y: number;
  width: number;
  /** The embedded font's PostScript name without its subset tag (`NotoSansHans-Regular`), with `{ fonts: true }`. */
  font?: string;
}

export interface PdfPage {
  items: PdfTextItem[];
  text: string;
  /** Images painted on the page, with `{ fonts: true }`. */
  images?: number;
}

/**
 * The text of every page of a PDF (with positions), and its Title, read back with pdfjs; with `fonts`, also the font
 * each piece of text is drawn in (slower: every page's drawing operations are read) and how many images each page
 * paints.
 */
export async function extractPdf(
  pdf: Buffer | Uint8Array,
  options: { fonts?: boolean } = {},
): Promise<{ pages: PdfPage[]; title: unknown }> {
  const loading = getDocument({ data: new Uint8Array(pdf), useSystemFonts: false, isEvalSupported: false });
  const document = await loading.promise;
  try {
    const pages: PdfPage[] = [];
    for (let n = 1; n <= document.numPages; n++) {
      const page = await document.getPage(n);
      // The fonts are loaded (into commonObjs) as the drawing operations are read.
      const operators = options.fonts === true ? await page.getOperatorList() : undefined;
      const content = await page.getTextContent();
      const fontOf = (id: string): string | undefined => {
        if (operators === undefined || !page.commonObjs.has(id)) return undefined;
        const name = (page.commonObjs.get(id) as { name?: unknown }).name;
        return typeof name === "string" ? name.replace(/^[A-Z]{6}\+/, "") : undefined;
      };
      const items = content.items.flatMap((item): PdfTextItem[] => {
        if (!("str" in item)) return [];
        const font = fontOf(item.fontName);
        return [
          {
            str: item.str,
            x: Number(item.transform[4]),
            y: Number(item.transform[5]),
            width: item.width,
            ...(font === undefined ? {} : { font }),
          },
        ];
      });
      const images = operators?.fnArray.filter((fn) => fn === OPS.paintImageXObject).length;
      pages.push({ items, text: items.map((item) => item.str).join(" "), ...(images === undefined ? {} : { images }) });
    }
    const { info } = await document.getMetadata();
    return { pages, title: (info as { Title?: unknown }).Title };
  } finally {
    await loading.destroy();
  }
}

/** Collapses whitespace so that assertions do not depend on how pdfjs splits text into items. */
export function compact(text: string): string {
  return text.replace(/\s+/g, " ");
}

/** The targets of every annotation on every page (links carry a `url`). */
export async function pdfLinks(pdf: Buffer | Uint8Array): Promise<unknown[]> {
  const loading = getDocument({ data: new Uint8Array(pdf), useSystemFonts: false, isEvalSupported: false });
  const document = await loading.promise;
  try {
    const urls: unknown[] = [];
    for (let n = 1; n <= document.numPages; n++) {
      const annotations = (await (await document.getPage(n)).getAnnotations()) as { url?: unknown }[];
      urls.push(...annotations.map((annotation) => annotation.url));
    }
    return urls;
  } finally {
    await loading.destroy();
  }
}
